// Single-purpose WMI client as a BOF writes it (cf. trustedsec/CS-Remote-OPs-BOF src/common/wmi.c):
// the locator's CLSID/IID built from text with CLSIDFromString/IIDFromString, one IWbemServices call
// (ExecMethod Win32_Process.Create). build.sh compiles it; tests/test_yara_rules.py scans the objects.
#define WIN32_LEAN_AND_MEAN
#include <windows.h>
#include <wbemidl.h>

extern "C" HRESULT create_process(const wchar_t *resource, IWbemClassObject *params, IWbemClassObject **out)
{
    CLSID clsid;
    IID iid;
    IWbemLocator *locator = NULL;
    IWbemServices *services = NULL;
    CLSIDFromString(L"{4590F811-1D3A-11D0-891F-00AA004B2E24}", &clsid);
    IIDFromString(L"{DC12A687-737F-11CF-884D-00AA004B2E24}", &iid);
    HRESULT hr = CoCreateInstance(clsid, NULL, CLSCTX_INPROC_SERVER, iid, (void **)&locator);
    if (FAILED(hr))
        return hr;
    BSTR path = SysAllocString(resource);
    hr = locator->ConnectServer(path, NULL, NULL, NULL, 0, NULL, NULL, &services);
    SysFreeString(path);
    locator->Release();
    if (FAILED(hr))
        return hr;
    BSTR klass = SysAllocString(L"Win32_Process");
    BSTR method = SysAllocString(L"Create");
    hr = services->ExecMethod(klass, method, 0, NULL, params, out, NULL);
    SysFreeString(method);
    SysFreeString(klass);
    services->Release();
    return hr;
}
